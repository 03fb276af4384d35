<script>
(function(){
  function check(){ var out=[]; try {
    var items=MathJax.startup.document.getMathItemsWithin(document.body);
    items.forEach(function(it){
      if(!it.display) return;
      var c=it.typesetRoot; if(!c) return;
      var p=c.closest('article')||document.body;
      var inner=c.querySelector('mjx-math'); var iw=inner?inner.getBoundingClientRect().width:0;
      var pw=p.getBoundingClientRect().width;
      if(iw>pw+2) out.push(Math.round(iw)+' :: '+it.math.replace(/\s+/g,' ').slice(0,90));
    });
    } catch(e) { out=["ERR "+e]; }
    var d=document.createElement("pre"); d.id="WIDE"; d.textContent='WIDE<<'+out.join(' ||| ')+'>>'; document.body.appendChild(d);
  }
  function go(){ if(window.MathJax&&MathJax.startup&&MathJax.startup.promise){MathJax.startup.promise.then(function(){setTimeout(check,500)});} else setTimeout(go,200); }
  window.addEventListener('load', go);
})();
</script>
